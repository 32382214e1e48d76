* shmbox.prg: the FoxPro sample "使用共享内存在应用程序（进程）之间交换数据"
* (exchanging data between applications through shared memory), its
* SharedMemory class and its form, over shmbox.dll instead of raw kernel32
* calls. See docs/FOXPRO.md.
*
* Run it in two or more Visual FoxPro sessions (shmbox.dll, the 32-bit
* build, beside the .exe or on the PATH): type in one, Write; Read in the
* other. It shares the very block and mutex that the original sample uses
* ("MYAPPSHAREDMEMORY" and "sync_MYAPPSHAREDMEMORY"), so it also exchanges
* text with copies of the original that are still running.
*
* What changes for the program that uses the class: nothing in how it is
* called. WriteToSharedMemory(cBuffer, nOffset) still returns the bytes
* written, ReadFromSharedMemory(nBytesToRead, nOffset) the bytes read, and
* GetSharedMemorySize() the size. errorcode now holds shmbox's status (0,
* or negative: see the constants below) and errormessage says what went
* wrong and what to do. And the lock now survives a crash: if a process
* dies holding it, the next one takes it over at once instead of waiting
* 5 seconds every time, for ever.

LOCAL oForm As TForm
oForm = CREATEOBJECT("Tform")
oForm.Show(1)
* End of the main program

DEFINE CLASS Tform As Form
	Width=460
	Height=200
	Caption="使用共享内存在进程间交换数据 (shmbox)"
	smObject=NULL

	ADD OBJECT txtSharedMemory As EditBox WITH;
	Left=5, Top=10, Width=450, Height=120

	ADD OBJECT cmdReadFromMemory As CommandButton WITH;
	Left=40, Top=150, Width=190, Height=27,;
	Caption="从共享内存读取"

	ADD OBJECT cmdWriteToMemory As CommandButton WITH;
	Left=230, Top=150, Width=190, Height=27,;
	Caption="写入共享内存"

PROCEDURE Init
	THIS.smObject = CREATEOBJECT("SharedMemory",;
		"MYAPPSHAREDMEMORY", 1024)
	IF THIS.smObject.errorcode <> 0
		MESSAGEBOX(THIS.smObject.errormessage, 16, "shmbox")
	ENDIF

PROCEDURE cmdReadFromMemory.Click
	ThisForm.txtSharedMemory.Value =;
		ThisForm.smObject.ReadFromSharedMemory()
	IF ThisForm.smObject.errorcode <> 0
		MESSAGEBOX(ThisForm.smObject.errormessage, 48, "shmbox")
	ENDIF

PROCEDURE cmdWriteToMemory.Click
	LOCAL cBuffer
	cBuffer = PADR(ThisForm.txtSharedMemory.Value,;
		ThisForm.smObject.GetSharedMemorySize())
	ThisForm.smObject.WriteToSharedMemory(m.cBuffer)
	IF ThisForm.smObject.errorcode <> 0
		MESSAGEBOX(ThisForm.smObject.errormessage, 48, "shmbox")
	ENDIF
ENDDEFINE

* shmbox's statuses (include/shmbox.h)
#DEFINE SHMBOX_OK 0
#DEFINE SHMBOX_OWNER_DIED 1
#DEFINE SHMBOX_ERR_NOT_FOUND -1
#DEFINE SHMBOX_ERR_ALREADY_EXISTS -2
#DEFINE SHMBOX_ERR_SIZE_MISMATCH -3
#DEFINE SHMBOX_ERR_TIMEOUT -4
#DEFINE SHMBOX_ERR_OUT_OF_RANGE -5
#DEFINE SHMBOX_ERR_INVALID_ARGUMENT -6
#DEFINE SHMBOX_ERR_PERMISSION -7
#DEFINE SHMBOX_ERR_CORRUPT -8
#DEFINE SHMBOX_ERR_INCONSISTENT -9
#DEFINE SHMBOX_ERR_NOT_OWNER -10
#DEFINE SHMBOX_ERR_OTHER -100

DEFINE CLASS SharedMemory As Session
PROTECTED hSegment, MappingName, bufsize
	hSegment=0
	errorcode=0
	errormessage=""

PROCEDURE Init(cMappingName, nBufsize)
	THIS.declare
	THIS.MappingName=cMappingName
	THIS.bufsize=m.nBufsize
	THIS.InitMapping

PROCEDURE Destroy
	THIS.ReleaseMapping

FUNCTION GetSharedMemorySize
RETURN THIS.bufsize

FUNCTION WriteToSharedMemory(cBuffer, nOffset)
* nOffset counts from 0. shmbox takes the lock (waiting up to 5 s, as the
* sample did), writes what fits, and releases the lock; if the previous
* holder died holding it, it takes the lock over.
	THIS.errorcode=0
	IF THIS.hSegment=0
		RETURN 0
	ENDIF
	IF VARTYPE(nOffset) <> "N"
		nOffset=0
	ENDIF

	LOCAL nBytesWritten
	nBytesWritten = shmbox_write(THIS.hSegment, m.nOffset,;
		m.cBuffer, LEN(m.cBuffer))
	IF m.nBytesWritten < 0
		THIS.SetError(m.nBytesWritten)
		nBytesWritten=0
	ENDIF
RETURN m.nBytesWritten

FUNCTION ReadFromSharedMemory(nBytesToRead, nOffset)
* nOffset counts from 0.
	THIS.errorcode=0
	IF THIS.hSegment=0
		RETURN ""
	ENDIF
	IF VARTYPE(nOffset) <> "N"
		nOffset=0
	ENDIF
	IF VARTYPE(nBytesToRead) <> "N"
		nBytesToRead=THIS.bufsize
	ELSE
		nBytesToRead=MIN(nBytesToRead, THIS.bufsize)
	ENDIF

	LOCAL cBuffer, nBytesRead
	cBuffer = REPLICATE(CHR(0), m.nBytesToRead)
	nBytesRead = shmbox_read(THIS.hSegment, m.nOffset,;
		@cBuffer, m.nBytesToRead)
	IF m.nBytesRead < 0
		THIS.SetError(m.nBytesRead)
		RETURN ""
	ENDIF
RETURN LEFT(m.cBuffer, m.nBytesRead)

PROTECTED PROCEDURE InitMapping
* Opens the block, or creates it: the same block and mutex as the sample.
	LOCAL hSegment, nStatus
	hSegment=0
	nStatus = shmbox_open_or_create(THIS.MappingName,;
		THIS.bufsize, @hSegment)
	IF m.nStatus <> SHMBOX_OK
		THIS.SetError(m.nStatus)
	ELSE
		THIS.hSegment = m.hSegment
		THIS.bufsize = shmbox_size(m.hSegment)
	ENDIF

PROTECTED PROCEDURE ReleaseMapping
	IF THIS.hSegment <> 0
		= shmbox_close(THIS.hSegment)
		THIS.hSegment=0
	ENDIF

PROTECTED PROCEDURE SetError(nStatus)
* errorcode: shmbox's status; errormessage: what happened, and what to do.
	LOCAL cMessage
	cMessage = REPLICATE(CHR(0), 1024)
	= shmbox_last_error_message(@cMessage, 1024)
	THIS.errorcode = m.nStatus
	THIS.errormessage = LEFT(m.cMessage, AT(CHR(0), m.cMessage) - 1)

PROTECTED PROCEDURE declare
	DECLARE INTEGER shmbox_open_or_create IN shmbox.dll;
		STRING cName, INTEGER nSize, INTEGER @hSegment
	DECLARE shmbox_close IN shmbox.dll INTEGER hSegment
	DECLARE INTEGER shmbox_size IN shmbox.dll INTEGER hSegment
	DECLARE INTEGER shmbox_write IN shmbox.dll;
		INTEGER hSegment, INTEGER nOffset, STRING cData, INTEGER nLength
	DECLARE INTEGER shmbox_read IN shmbox.dll;
		INTEGER hSegment, INTEGER nOffset, STRING @cBuffer, INTEGER nLength
	DECLARE INTEGER shmbox_last_error_message IN shmbox.dll;
		STRING @cBuffer, INTEGER nLength
ENDDEFINE
